"""Markdown tables of gradwire's criterion results (docs/BENCHMARKS.md), in GB/s of f32 input
(10^9 bytes per second), from the median time of each benchmark.

    cargo bench --bench codecs
    python3 bench/criterion_table.py target/criterion > /tmp/tables.md

Standard library only. Benchmarks missing from the folder (not run) are left out.
"""

import json
import sys
from pathlib import Path


def load(root: Path) -> dict[str, tuple[float, float]]:
    """full_id -> (bytes per iteration, median seconds per iteration)."""
    out = {}
    for bench in root.rglob("new/benchmark.json"):
        meta = json.loads(bench.read_text())
        estimates = json.loads((bench.parent / "estimates.json").read_text())
        throughput = meta.get("throughput") or {}
        if "Bytes" not in throughput:
            continue
        out[meta["full_id"]] = (float(throughput["Bytes"]), estimates["median"]["point_estimate"] * 1e-9)
    return out


def table(results: dict[str, tuple[float, float]], group: str, verbs: tuple[str, str]) -> str:
    names = sorted({k.split("/", 2)[2] for k in results if k.startswith(group + "/")}, key=str)
    lines = [f"| pipeline | {verbs[0]} GB/s | {verbs[1]} GB/s |", "|---|---|---|"]
    for name in names:
        cells = []
        for verb in verbs:
            r = results.get(f"{group}/{verb}/{name}")
            cells.append(f"{r[0] / r[1] / 1e9:.3f}" if r else "")
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def scaling(results: dict[str, tuple[float, float]]) -> str:
    """threads/{encode,decode}-{1,2}t/NAME: GB/s on 1 and 2 threads and their ratio."""
    names = sorted({k.split("/", 2)[2] for k in results if k.startswith("threads/")}, key=str)
    lines = ["| pipeline | encode 1 thread | encode 2 threads | ratio | decode 1 thread | decode 2 threads | ratio |",
             "|---|---|---|---|---|---|---|"]
    for name in names:
        cells = []
        for verb in ("encode", "decode"):
            one, two = (results.get(f"threads/{verb}-{t}t/{name}") for t in (1, 2))
            if one and two:
                a, b = one[0] / one[1] / 1e9, two[0] / two[1] / 1e9
                cells += [f"{a:.3f}", f"{b:.3f}", f"{b / a:.2f}x"]
            else:
                cells += ["", "", ""]
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    results = load(Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion"))
    print("### chunk: one chunk of 2^20 values, one thread\n")
    print(table(results, "chunk", ("encode", "decode")))
    print("\n### stream: a 2^24-value tensor through Writer and Reader, one thread\n")
    print(table(results, "stream", ("encode", "decode")))
    print("\n### threads: the stream benchmark's tensor with 1 and 2 threads\n")
    print(scaling(results))
    print("\n### aggregate: four updates of 2^22 values\n")
    print(table(results, "aggregate", ("majority", "mean")))


if __name__ == "__main__":
    main()
