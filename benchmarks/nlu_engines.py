"""The two NLU engines side by side on the same sets, in one run: the held-out set and the development sets.

    .venv/bin/python benchmarks/nlu_engines.py [--rasa-url URL] [--out benchmarks/results/nlu_engines.md]

Reports per set and engine: top-1 accuracy per language, macro-F1, out-of-scope rejection, parse latency
p50/p99 (Rasa over HTTP, as the app calls it), resident memory and training time. Without --rasa-url
it trains (or reuses) the Rasa model with scripts/rasa.sh and starts the server on a free loopback port.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from collections.abc import Awaitable, Callable

from bot.conversation import DecisionPolicy
from bot.nlu.embedded import EmbeddedEngine, train
from bot.nlu.engine import NluResult
from bot.nlu.evaluation import OUTCOMES, LabelledExample, Report, evaluate, read_test_file
from bot.nlu.rasa import RasaEngine
from bot.nlu.training_data import load_examples


async def run(
    name: str, parse: Callable[[str], Awaitable[NluResult]], examples: list[LabelledExample]
) -> Report:
    """Parse every example once: top-1 scores, and what the person would get under the default policy."""
    return await evaluate(name, parse, examples, policy=DecisionPolicy())


DATA = ROOT / "nlu_data" / "data"
TESTS = ROOT / "nlu_data" / "tests"
TEST = TESTS / "test_nlu.yml"
RASA = ROOT / "scripts" / "rasa.sh"


def rss_mib(pid: int | str = "self") -> float:
    """Resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def row(name: str, report: Report, memory: float, training: str) -> str:
    languages = " | ".join(
        f"{report.language_accuracy(language):.3f}" for language in ("pl", "uk", "ru", "en")
    )
    return (
        f"| {name} | {languages} | {report.accuracy:.3f} | {report.macro_f1:.3f} | "
        f"{report.out_of_scope_rejection:.3f} | {report.percentile_ms(50):.2f} | {report.percentile_ms(99):.2f} | "
        f"{memory:.0f} | {training} |"
    )


SETS = (
    (TEST, "held out: typed questions, never trained on"),
    (TESTS / "speech_dev_nlu.yml", "development: phone speech as speech-to-text writes it (issue 12)"),
    (TESTS / "hard_dev_nlu.yml", "development: hard messages: long stories, translit, fragments (issue 15)"),
)


def set_section(path: Path, story: str, reports: list[tuple[str, Report, float, str]]) -> list[str]:
    """One test set's tables: top-1 per engine and language, then what a person gets."""
    first = reports[0][1]
    languages = {language: total for language, (_correct, total) in sorted(first.per_language.items())}
    size = sum(languages.values())
    header = (
        "| engine | pl | uk | ru | en | all | macro-F1 | out-of-scope rejected | p50 ms | p99 ms | memory MiB | training |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    )
    outcome_rows = [
        f"| {name.split(' ')[0]} | " + " | ".join(f"{report.outcome_share(o):.3f}" for o in OUTCOMES) + " |"
        for name, report, _memory, _training in reports
    ]
    answered_rows = [
        f"| {name.split(' ')[0]} | "
        + " | ".join(
            f"{report.outcome_share(OUTCOMES[0], language):.3f} / {report.outcome_share(OUTCOMES[1], language):.3f}"
            for language in ("pl", "uk", "ru", "en")
        )
        + " |"
        for name, report, _memory, _training in reports
    ]
    return [
        f"## `{path.relative_to(ROOT)}`: {size} examples {languages}",
        "",
        f"{story[0].upper()}{story[1:]}.",
        "",
        header,
        *(row(name, report, memory, training) for name, report, memory, training in reports),
        "",
        "What a person gets under the default decision policy (share of the set):",
        "",
        "| engine | " + " | ".join(OUTCOMES) + " |",
        "| --- | " + " | ".join("---" for _ in OUTCOMES) + " |",
        *outcome_rows,
        "",
        "Answered right / answered wrong per language:",
        "",
        "| engine | pl | uk | ru | en |",
        "| --- | --- | --- | --- | --- |",
        *answered_rows,
        "",
    ]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rasa-url")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "nlu_engines.md")
    args = parser.parse_args()

    sets = [(path, story, read_test_file(path)) for path, story in SETS if path.exists()]
    before = rss_mib()
    started = time.perf_counter()
    model = train(load_examples([DATA]))
    embedded_training = f"{time.perf_counter() - started:.1f} s"
    engine = EmbeddedEngine(model)
    embedded_memory = rss_mib() - before
    for example in sets[0][2][:50]:  # warm up caches, as a running service is
        engine.parse_sync(example.text)

    rasa_url = args.rasa_url
    # The server's pid file (for its memory): where scripts/rasa.sh keeps it for a server this run starts, or
    # INFOOPT_RASA_STATE for one started beforehand and named with --rasa-url.
    state = Path(os.environ.get("INFOOPT_RASA_STATE", ROOT / ".rasa" / "benchmark"))
    if rasa_url is None:
        subprocess.run(["bash", str(RASA), "train"], check=True)
        port = free_port()
        environment = {**os.environ, "INFOOPT_RASA_STATE": str(state)}
        subprocess.run(["bash", str(RASA), "start", str(port)], check=True, env=environment)
        rasa_url = f"http://127.0.0.1:{port}"
    model_path = subprocess.run(
        ["bash", str(RASA), "model-path"], check=True, capture_output=True, text=True
    ).stdout.strip()
    seconds_file = Path(model_path.removesuffix(".tar.gz") + ".train-seconds")
    rasa_training = f"{seconds_file.read_text().strip()} s" if seconds_file.exists() else "not recorded"
    sections: list[str] = []
    try:
        rasa = RasaEngine(rasa_url, timeout=30)
        for example in sets[0][2][:20]:
            await rasa.parse(example.text)
        pid_file = state / "rasa-server.pid"
        pid = pid_file.read_text().strip() if pid_file.exists() else None
        for path, story, examples in sets:
            embedded_report = await run("embedded", engine.parse, examples)
            rasa_report = await run("rasa", rasa.parse, examples)
            rasa_memory = rss_mib(pid) if pid else float("nan")
            reports = [
                (
                    "embedded (char+word+skeleton TF-IDF, SGD)",
                    embedded_report,
                    embedded_memory,
                    embedded_training,
                ),
                ("Rasa 3.6.21 server (DIET + ResponseSelector)", rasa_report, rasa_memory, rasa_training),
            ]
            sections += set_section(path, story, reports)
        await rasa.close()
    finally:
        if args.rasa_url is None:
            subprocess.run(
                ["bash", str(RASA), "stop"], check=False, env={**os.environ, "INFOOPT_RASA_STATE": str(state)}
            )

    text = "\n".join(
        [
            "# NLU engines side by side on the same sets",
            "",
            "Both engines are trained on the same `nlu_data/data/`. Top-1 accuracy counts the first label (a",
            "`faq/<topic>` or a conversation intent); out-of-scope rejected is the share of out-of-scope questions",
            "labelled `out_of_scope` or `nlu_fallback`. Latency is one parse at a time on this machine (2 cores);",
            "Rasa's includes the HTTP round trip the app makes. Memory is resident memory: the embedded model's",
            "growth of this process, the whole Rasa server process. A development set has guided training data",
            "(never its own sentences), so its figures flatter the engines more than the held-out set's do.",
            '"Asked back" offers the two or three likeliest topics as buttons.',
            "",
            *sections,
        ]
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    asyncio.run(main())
