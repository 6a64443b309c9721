"""Many files separated in parallel: worker processes on this machine, or tasks on a Ray cluster.

Every input gets its own folder under the output folder with exactly what ``rtsep separate``
writes there (stems and ``report.json``, written last); ``batch.json`` beside them records each
input as ``done``, ``skipped`` (its folder was already complete) or ``failed`` (with the
one-line error). A failing file never stops the others, and a second run over the same output
folder redoes only what is not complete.

Folder names: the input's stem (``mix.wav`` → ``mix/``); inputs are taken in sorted path order
and a stem already taken gets ``-2``, ``-3``, … (``a/mix.wav`` → ``mix/``, ``b/mix.wav`` →
``mix-2/``). The same task function (:func:`separate_group`: one input, or a group of inputs
stepped together) runs in every mode; workers read and write the paths themselves, so on a
cluster the paths must be on a file system every node sees.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from .errors import user_message
from .loading import load_configured_model

if TYPE_CHECKING:
    from .engine.runtime import Engine
    from .engine.step_group import StepGroup

#: File suffixes a folder given as input is searched for (recursively).
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".opus", ".aif", ".aiff", ".mp3")
BATCH_REPORT = "batch.json"


@dataclass(frozen=True)
class BatchTask:
    """One input and the folder its outputs go to, with what ``rtsep separate`` needs."""

    input: str
    folder: str
    cues: tuple[str, ...]
    mode: str | None
    config: dict


@dataclass
class BatchResult:
    input: str
    folder: str
    status: str  # "done", "skipped" or "failed"
    error: str | None = None
    seconds: float = 0.0  # wall time of the task


def collect_inputs(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, and the audio files (:data:`AUDIO_SUFFIXES`) inside folders, sorted.

    A path that does not exist is kept: its task fails with a clear error, the others run.
    """
    found: set[Path] = set()
    for path in map(Path, paths):
        if path.is_dir():
            found.update(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
            )
        else:
            found.add(path)
    return sorted(found)


def output_folders(inputs: Sequence[Path], out_dir: Path) -> list[Path]:
    """One folder per input (see the module docstring for the naming rule)."""
    taken: set[str] = set()
    folders = []
    for path in inputs:
        name, index = path.stem, 1
        while name in taken:
            index += 1
            name = f"{path.stem}-{index}"
        taken.add(name)
        folders.append(out_dir / name)
    return folders


def is_complete(folder: Path) -> bool:
    """Whether ``folder`` holds a finished ``rtsep separate`` run: ``report.json`` (written
    last) and every file it lists."""
    report = folder / "report.json"
    try:
        files = json.loads(report.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return all((folder / name).is_file() for name in files)


_MODELS: dict[tuple[str, str], object] = {}


def separate_task(task: BatchTask) -> BatchResult:
    """Run one input (in whatever process or Ray worker calls it); never raises for a bad
    input: the error comes back in the result."""
    return _separate(task, None)


def separate_group(tasks: Sequence[BatchTask]) -> list[BatchResult]:
    """Run several inputs at once, one thread each, their model steps batched: one
    :class:`~rtsep.engine.step_group.StepGroup` call per hop for all of them (a file that
    ends or fails leaves the batch). Every output equals :func:`separate_task`'s; never
    raises for a bad input."""
    if len(tasks) == 1:
        return [separate_task(tasks[0])]
    from .engine.step_group import StepGroup

    try:
        model = _model(tasks[0].config)
        if tasks[0].cues:  # encoded once here, before the threads would race to load the encoder
            model.cue_queries(list(tasks[0].cues))
        group = StepGroup(model, len(tasks))
    except Exception as error:  # noqa: BLE001 - reported per file, as separate_task does
        return [_failed(task, error, time.perf_counter()) for task in tasks]
    with ThreadPoolExecutor(len(tasks), thread_name_prefix="rtsep-batch") as pool:
        return list(pool.map(lambda task: _separate(task, group), tasks))


def _separate(task: BatchTask, group: StepGroup | None) -> BatchResult:
    """One input, alone (``group`` None) or as a member of a step group: its engine's backend
    is swapped for a group member before the first hop (``run_file``'s ``on_start``)."""
    from .stems import read_input, separate_to_folder

    started = time.perf_counter()
    member = None

    def join_group(engine: Engine) -> None:
        nonlocal member
        member = engine.backend = group.join(engine.backend.specs)

    try:
        mix = Path(task.input)
        separate_to_folder(
            _model(task.config),
            mix,
            Path(task.folder),
            list(task.cues),
            task.mode,
            task.config,
            progress=False,
            on_start=join_group if group is not None else None,
            audio=read_input(mix),
        )
    except Exception as error:  # noqa: BLE001 - one bad file must not stop the batch
        return _failed(task, error, started)
    finally:
        if group is not None:
            group.leave(member)
    return BatchResult(task.input, task.folder, "done", None, _since(started))


def _model(config: dict):
    """The model of ``config``, loaded once per worker process."""
    key = (config["model"]["path"], config["model"]["device"])
    if key not in _MODELS:
        _MODELS[key] = load_configured_model(config)
    return _MODELS[key]


def _failed(task: BatchTask, error: Exception, started: float) -> BatchResult:
    message = user_message(error) or f"{type(error).__name__}: {error}"
    return BatchResult(task.input, task.folder, "failed", message, _since(started))


def run_batch(
    inputs: Iterable[str | Path],
    out_dir: str | Path,
    config: dict,
    cues: Sequence[str] = (),
    mode: str | None = None,
    workers: int = 1,
    ray_address: str | None = None,
    progress: bool = True,
    streams: int = 1,
) -> dict:
    """Separate every input into ``out_dir``; returns (and writes) the ``batch.json`` record.

    ``workers`` processes on this machine (1 = in this process); ``ray_address``: ``"local"``
    starts a local Ray cluster of ``workers`` CPUs, any other value joins that cluster
    (``ray.init(address=...)``); each Ray task takes one CPU. The model runs with
    ``config["engine"]["threads"]`` threads in every worker. ``streams`` > 1: each worker
    task takes a group of that many inputs (of similar length, :func:`group_tasks`) and steps
    them together, one batched torch call per hop (:func:`separate_group`); the files written
    are the same.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = collect_inputs(inputs)
    results: list[BatchResult] = []
    tasks = []
    # Batched steps run in torch: the engine's own backend is only built, never stepped.
    task_config = config if streams <= 1 else _with_backend(config, "torch")
    for path, folder in zip(paths, output_folders(paths, out_dir)):
        if is_complete(folder):
            results.append(BatchResult(str(path), str(folder), "skipped"))
        else:
            tasks.append(BatchTask(str(path), str(folder), tuple(cues), mode, task_config))
    bar = tqdm(
        total=len(paths), initial=len(results), desc="batch", unit="file", disable=not progress
    )
    runner = _ray_results if ray_address else _process_results
    started = time.perf_counter()
    for group in runner(group_tasks(tasks, streams), workers, ray_address):
        for result in group:
            results.append(result)
            bar.update(1)
            if result.status == "failed":
                tqdm.write(f"failed: {result.input}: {result.error}")
    bar.close()
    order = {str(p): i for i, p in enumerate(paths)}
    results.sort(key=lambda r: order[r.input])
    record = {
        "out": str(out_dir),
        "cues": list(cues),
        "mode": mode,
        "workers": workers,
        "streams": streams,
        "ray": ray_address,
        "wall_seconds": round(time.perf_counter() - started, 3),
        **{s: sum(r.status == s for r in results) for s in ("done", "skipped", "failed")},
        "inputs": [asdict(r) for r in results],
    }
    tmp = out_dir / f".{BATCH_REPORT}.tmp"
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, out_dir / BATCH_REPORT)
    return record


def group_tasks(tasks: Sequence[BatchTask], streams: int) -> list[list[BatchTask]]:
    """``tasks`` in groups of ``streams``, longest files first, so that the files of a group
    end close together (a group's batch shrinks as its files end); a file whose length
    cannot be read counts as empty (its task fails fast)."""
    if streams <= 1:
        return [[task] for task in tasks]
    ordered = sorted(tasks, key=_input_seconds, reverse=True)
    return [ordered[i : i + streams] for i in range(0, len(ordered), streams)]


def _input_seconds(task: BatchTask) -> float:
    import soundfile

    try:
        return float(soundfile.info(task.input).duration)
    except Exception:  # noqa: BLE001 - any unreadable file: its task reports why
        return 0.0


def _with_backend(config: dict, backend: str) -> dict:
    return {**config, "engine": {**config["engine"], "backend": backend}}


def _process_results(
    groups: list[list[BatchTask]], workers: int, _address: str | None
) -> Iterator[list[BatchResult]]:
    if workers <= 1 or len(groups) <= 1:
        yield from map(separate_group, groups)
        return
    # spawn, not fork: the parent may hold torch/OpenMP threads that a fork would break.
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        for future in as_completed([pool.submit(separate_group, g) for g in groups]):
            yield future.result()


def _ray_results(
    groups: list[list[BatchTask]], workers: int, address: str | None
) -> Iterator[list[BatchResult]]:
    try:
        import ray
    except ImportError as error:
        raise RuntimeError("--ray needs Ray: pip install 'rtsep[ray]'") from error
    started_here = not ray.is_initialized()
    if started_here:
        if address == "local":
            ray.init(num_cpus=max(1, workers), include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    try:
        remote: Callable = ray.remote(num_cpus=1)(separate_group)
        pending = [remote.remote(group) for group in groups]
        while pending:
            finished, pending = ray.wait(pending, num_returns=1)
            yield ray.get(finished[0])
    finally:
        if started_here:
            ray.shutdown()


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 3)
