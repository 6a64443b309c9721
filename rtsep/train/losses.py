"""Training losses: SI-SNR, onset-ordered PIT, EDA existence, cue–attractor alignment.

All signal tensors are ``[batch, sources, time]``; losses are minimised (negative SI-SNR).
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

EPS = 1e-8


def pairwise_neg_si_snr(
    estimates: torch.Tensor, targets: torch.Tensor, max_db: float | None = None
) -> torch.Tensor:
    """Negative zero-mean SI-SNR in dB for every (estimate, target) pair.

    ``estimates [B, N, T]``, ``targets [B, S, T]`` → ``[B, N, S]``.

    ``max_db`` caps the SI-SNR softly (the error energy gets ``10^(-max_db/10)`` of the target
    projection's energy added, as in the thresholded SNR of MixIT), so no pair can earn more than
    ``max_db``. Training needs the cap: without it, passing a one-source mixture through unchanged
    scores ~90 dB (float32 limits) and outweighs every real separation in the batch, and the
    network settles on the identity mask.
    """
    est = estimates - estimates.mean(-1, keepdim=True)
    ref = targets - targets.mean(-1, keepdim=True)
    dot = torch.einsum("bnt,bst->bns", est, ref)
    ref_energy = (ref * ref).sum(-1).unsqueeze(1) + EPS  # [B, 1, S]
    scale = dot / ref_energy
    projection_energy = scale * scale * ref_energy
    est_energy = (est * est).sum(-1).unsqueeze(2)  # [B, N, 1]
    error_energy = est_energy - 2 * scale * dot + projection_energy
    return _neg_ratio_db(projection_energy, error_energy, max_db)


def pairwise_neg_snr(
    estimates: torch.Tensor, targets: torch.Tensor, max_db: float | None = None
) -> torch.Tensor:
    """Negative SNR in dB (not scale-invariant) for every (estimate, target) pair.

    ``estimates [B, N, T]``, ``targets [B, S, T]`` → ``[B, N, S]``; ``max_db`` caps it softly
    as in :func:`pairwise_neg_si_snr`. Unlike SI-SNR it scores the level too: trained on
    SI-SNR alone, with the silence loss for absent cues pulling every level down, extraction
    outputs had the right shape at -60 dB.
    """
    dot = torch.einsum("bnt,bst->bns", estimates, targets)
    target_energy = (targets * targets).sum(-1).unsqueeze(1)  # [B, 1, S]
    estimate_energy = (estimates * estimates).sum(-1).unsqueeze(2)  # [B, N, 1]
    error_energy = estimate_energy - 2 * dot + target_energy
    return _neg_ratio_db(target_energy, error_energy, max_db)


def pairwise_level_error_db(estimates: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``|10 log10(estimate energy / target energy)|`` in dB for every pair: ``[B, N, S]``.

    Added to SI-SNR (which cannot see the level) it keeps outputs at their target's level
    while the shape is still scored scale-invariantly, as the evaluation scores it.
    """
    target_energy = (targets * targets).sum(-1).unsqueeze(1)  # [B, 1, S]
    estimate_energy = (estimates * estimates).sum(-1).unsqueeze(2)  # [B, N, 1]
    return (10 * torch.log10((estimate_energy + EPS) / (target_energy + EPS))).abs()


def pairwise_neg_compressed_snr(
    estimates: torch.Tensor,
    targets: torch.Tensor,
    max_db: float | None = None,
    *,
    exponent: float = 0.3,
    magnitude_share: float = 0.7,
    window: int = 512,
    hop: int = 256,
) -> torch.Tensor:
    """Negative SNR in dB of the compressed spectrum for every (estimate, target) pair.

    ``estimates [B, N, T]``, ``targets [B, S, T]`` → ``[B, N, S]``. Both are taken to an STFT
    (Hann ``window``/``hop`` samples) whose magnitudes are compressed, ``|X|^exponent`` with the
    phase kept (as DeepFilterNet and GTCRN train). The error is ``magnitude_share`` × the
    squared difference of the compressed magnitudes plus the rest × that of the compressed
    complex values, summed over bins and frames; the signal is the target's compressed energy;
    ``max_db`` caps softly as in :func:`pairwise_neg_si_snr`. Compression gives quiet bins
    (high frequencies, soft onsets) a weight that a waveform SNR leaves to the loud ones.
    """
    batch, outputs, length = estimates.shape
    sources = targets.shape[1]
    spectra = torch.stft(
        torch.cat([estimates, targets], 1).reshape(-1, length),
        window,
        hop,
        window=torch.hann_window(window, device=estimates.device, dtype=estimates.dtype),
        return_complex=True,
    ).reshape(batch, outputs + sources, -1)
    magnitude = (spectra.real.square() + spectra.imag.square() + EPS).sqrt()
    compressed_magnitude = magnitude**exponent
    compressed = spectra * (compressed_magnitude / magnitude)
    est_mag, ref_mag = compressed_magnitude[:, :outputs], compressed_magnitude[:, outputs:]
    est, ref = compressed[:, :outputs], compressed[:, outputs:]
    est_energy = est_mag.square().sum(-1).unsqueeze(2)  # [B, N, 1]: |compressed|² = mag²
    ref_energy = ref_mag.square().sum(-1).unsqueeze(1)  # [B, 1, S]
    magnitude_cross = torch.einsum("bnf,bsf->bns", est_mag, ref_mag)
    complex_cross = torch.einsum("bnf,bsf->bns", est, ref.conj()).real
    magnitude_error = est_energy + ref_energy - 2 * magnitude_cross
    complex_error = est_energy + ref_energy - 2 * complex_cross
    error = magnitude_share * magnitude_error + (1 - magnitude_share) * complex_error
    return _neg_ratio_db(ref_energy.expand_as(error), error, max_db)


def _neg_ratio_db(
    signal_energy: torch.Tensor, error_energy: torch.Tensor, max_db: float | None
) -> torch.Tensor:
    """``-10 log10(signal / error)``, the error floored at EPS and, with ``max_db``, raised by
    ``10^(-max_db/10)`` of the signal energy (the soft cap)."""
    error_energy = error_energy.clamp_min(EPS)
    if max_db is not None:
        error_energy = error_energy + 10 ** (-max_db / 10) * signal_energy
    return -10 * torch.log10(signal_energy.clamp_min(EPS) / error_energy)


def onset_ordered_pit(
    pairwise: torch.Tensor,
    count: torch.Tensor,
    onsets: torch.Tensor,
    tolerance_samples: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Best assignment of the first ``count`` outputs to the ``count`` sources.

    The EDA network counts sources heard so far, so output slot ``k`` must carry a source that
    began no later than the source of slot ``k + 1``: only permutations that keep the onset
    order are allowed. Onsets closer than ``tolerance_samples`` count as ties (either order):
    sources that all play from the start differ in onset by a few samples that nobody can
    hear, and a strict order there is one no network can know, so it learns to hedge (the first
    output carries the whole mixture).

    Args:
        pairwise: ``[B, S, S]`` loss of output ``k`` against source ``j``.
        count: ``[B]`` number of real sources (the rest are padding).
        onsets: ``[B, S]`` onset sample per source (padding: a large value).
        tolerance_samples: onsets at most this far apart may come in either order.
    Returns:
        ``(loss [B] mean over real sources, permutation [B, S])`` where ``permutation[b, k]``
        is the source assigned to output ``k``.
    """
    batch, slots, _ = pairwise.shape
    perms = torch.tensor(
        list(itertools.permutations(range(slots))), device=pairwise.device
    )  # [P, S]
    real = torch.arange(slots, device=pairwise.device)[None, :] < count[:, None]  # [B, S]
    # cost[b, p] = sum_k real[k] * pairwise[b, k, perm[p, k]]
    device = pairwise.device
    gathered = pairwise[:, torch.arange(slots, device=device)[None, :], perms]  # [B, P, S]
    cost = (gathered * real[:, None, :]).sum(-1)
    # Validity: padding slots map to padding sources; onsets non-decreasing along real slots.
    perm_onsets = onsets[:, perms]  # [B, P, S]
    perm_real = real[torch.arange(batch, device=device)[:, None, None], perms[None]]  # [B,P,S]
    valid = (perm_real == real[:, None, :]).all(-1)
    ordered = perm_onsets[..., 1:] >= perm_onsets[..., :-1] - tolerance_samples
    both_real = real[:, None, 1:]
    valid &= (ordered | ~both_real).all(-1)
    cost = cost.masked_fill(~valid, float("inf"))
    best = cost.argmin(-1)
    loss = cost[torch.arange(batch, device=device), best] / count.clamp_min(1)
    return loss, perms[best]


def existence_loss(existence_logits: torch.Tensor, heard: torch.Tensor) -> torch.Tensor:
    """BCE of the EDA existence logits ``[B, G, S + 1]`` against the count heard so far.

    ``heard [B, G]``: number of sources whose onset precedes grid point ``g``. The targets are
    ``heard`` ones followed by zeros, so decoding stops after the last heard source.
    """
    slots = existence_logits.shape[-1]
    target = (torch.arange(slots, device=heard.device)[None, None, :] < heard[..., None]).float()
    return F.binary_cross_entropy_with_logits(existence_logits, target)


def presence_loss(
    presence_logits: torch.Tensor, cue_onsets: torch.Tensor, hop_samples: int
) -> torch.Tensor:
    """BCE of the cue-presence logits ``[B, N, T]`` against "the cued class has begun".

    ``cue_onsets [B, N]``: first sample of the cued class in the mixture (any value at or past
    the end for a class that is absent). STFT frame ``t`` has heard the mixture up to sample
    ``(t + 1) * hop_samples`` (exclusive), as the EDA's existence targets count it.
    """
    frames = presence_logits.shape[-1]
    heard_until = (torch.arange(frames, device=cue_onsets.device) + 1) * hop_samples
    target = (cue_onsets[..., None] < heard_until).to(presence_logits.dtype)
    return F.binary_cross_entropy_with_logits(presence_logits, target)


def alignment_loss(
    embeddings: torch.Tensor,
    label_ids: torch.Tensor,
    label_table: torch.Tensor,
    temperature: float = 0.1,
) -> torch.Tensor:
    """MSE + InfoNCE between embeddings ``[M, E]`` and their labels' embeddings.

    ``label_table [L, E]``; InfoNCE contrasts every label (cosine similarity / temperature).
    """
    if embeddings.shape[0] == 0:
        return embeddings.sum() * 0
    mse = F.mse_loss(embeddings, label_table[label_ids])
    logits = F.normalize(embeddings, dim=-1) @ F.normalize(label_table, dim=-1).T / temperature
    return mse + F.cross_entropy(logits, label_ids)


def silence_loss(estimates: torch.Tensor, mixture: torch.Tensor) -> torch.Tensor:
    """Energy of outputs that should be silent, in dB relative to the mixture: ``[B, N]``."""
    power = (estimates * estimates).mean(-1)
    reference = (mixture * mixture).mean(-1, keepdim=True) + EPS
    return 10 * torch.log10(power / reference + 1e-4)
