"""Store timings for a 10,000-image project (budget: open a 10k folder to a usable list <= 1 s).

    python benchmarks/bench_store.py [--images 10000] [--repeat 5]

Measures, each the best of ``--repeat`` runs (min, plus median):
- sync_images with generated (relpath, size, mtime) entries: first sync and a no-change re-sync;
- scan of a real folder of empty *.jpg files (os.scandir walk + sync) into a fresh project;
- images() for the whole list (with shapes on a tenth of them), with a query, with a status;
- Project.open of the existing project (lock + schema check);
- single edits (add_shape, undo), which pay one fsync each (synchronous=FULL).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.store import Project  # noqa: E402


def timed(fn: Callable[[], Any], repeat: int, setup: Callable[[], Any] | None = None
          ) -> tuple[float, float]:
    """(min, median) seconds of ``fn`` over ``repeat`` runs; ``setup`` runs untimed before each."""
    times = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def report(name: str, result: tuple[float, float]) -> None:
    print(f"{name:<44} min {result[0] * 1000:8.1f} ms   median {result[1] * 1000:8.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    n, repeat = args.images, args.repeat
    entries = [(f"site{i % 20:02d}/plot{i % 7}/img{i}.jpg", 1000 + i, 1.7e9 + i)
               for i in range(n)]

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        counter = iter(range(10**6))
        state: dict[str, Any] = {}

        def fresh() -> None:
            folder = root / f"p{next(counter)}"
            folder.mkdir()
            if "p" in state:
                state["p"].close()
            state["p"] = Project.open(folder)

        report(f"sync_images, {n} new entries", timed(lambda: state["p"].sync_images(entries),
                                                    repeat, fresh))
        p: Project = state["p"]
        report(f"sync_images, {n} unchanged entries", timed(lambda: p.sync_images(entries),
                                                          repeat))

        images = p.images()
        shapes = [{"kind": "box", "geometry": [0, 0, 10, 10]}] * 5
        for img in images[::10]:
            p.add_shapes(img["id"], shapes)
        report(f"images(), {n} images, {n // 10 * 5} shapes", timed(p.images, repeat))
        report("images(query='img12')", timed(lambda: p.images(query="img12"), repeat))
        report("images(status='in_progress')",
               timed(lambda: p.images(status="in_progress"), repeat))
        report("add_shape (one committed edit)",
               timed(lambda: p.add_shape(images[1]["id"], "point", [1, 1]), repeat * 4))
        report("undo (one committed edit)", timed(p.undo, repeat * 4))
        folder = p.folder
        p.close()

        def reopen() -> None:
            Project.open(folder).close()

        report("Project.open + close of that project", timed(reopen, repeat))

        photos = root / "photos"
        for relpath, _, _ in entries:
            path = photos / relpath
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        scan_state: dict[str, Any] = {}

        def fresh_scan_project() -> None:
            meta = photos / ".fieldmark"
            if "p" in scan_state:
                scan_state["p"].close()
            for f in meta.glob("*"):
                f.unlink()
            scan_state["p"] = Project.open(photos)

        report(f"scan of {n} real empty *.jpg + sync (fresh)",
               timed(lambda: scan_state["p"].scan([".jpg"]), repeat, fresh_scan_project))
        sp: Project = scan_state["p"]
        report(f"re-scan of {n} files, nothing changed", timed(lambda: sp.scan([".jpg"]), repeat))

        def open_to_list() -> None:
            scan_state["p"].close()
            scan_state["p"] = q = Project.open(photos)
            q.scan([".jpg"])
            q.images()

        report("open + scan + images() (to a usable list)", timed(open_to_list, repeat))
        scan_state["p"].close()
        if "p" in state:
            state["p"].close()


if __name__ == "__main__":
    main()
