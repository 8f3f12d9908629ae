"""Judge quality on labelled pairs: precision of "boring", boring rate per class, before/after.

How to run (from the repository root)::

    .venv/bin/python benchmarks/judge_pairs.py                 # table
    .venv/bin/python benchmarks/judge_pairs.py --json judge_pairs.json

Pairs: `openended.moi.labelled_pairs` (five grammars x five classes: same, paraphrase,
count, neighbour, unrelated). Judges compared: the embedding judge alone (MiniLM at cosine
0.70, the default before the structural check), the embedding judge with the structural
check (the default now), and the rule oracle. Target: precision >= 0.95 with recall >= 0.80
on the paraphrase and count classes.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from openended.moi.embedding import EmbeddingJudge
from openended.moi.labelled_pairs import CLASSES, judge_scores, labelled_pairs
from openended.moi.oracle import RuleOracleJudge
from openended.moi.structure import VERB_SYNONYMS, parse_task


def _in_lexicon(text: str) -> bool:
    verb = parse_task(text).verbs[0]
    return any(verb == head or verb in words for head, words in VERB_SYNONYMS.items())


JUDGES = {
    "embedding (cosine only, before)": lambda: EmbeddingJudge(structure=False),
    "embedding + structure (default)": lambda: EmbeddingJudge(),
    "rule oracle": lambda: RuleOracleJudge(),
}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-class", type=int, default=40, help="pairs per class per grammar")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=str, default=None)
    args = ap.parse_args(argv)
    pairs = labelled_pairs(args.per_class, args.seed)
    results: dict[str, Any] = {"pairs": len(pairs), "config": vars(args), "judges": {}}
    # Paraphrases whose verb the structural lexicon does not know: the embedding decides these.
    outside = [p for p in pairs if p.cls == "paraphrase" and not _in_lexicon(p.candidate)]
    for name, make in JUDGES.items():
        judge = make()
        results["judges"][name] = judge_scores(judge, pairs)
        results["judges"][name]["paraphrase_outside_lexicon"] = judge_scores(judge, outside)["recall"]
    results["paraphrase_outside_lexicon_pairs"] = len(outside)
    head = f"{'judge':34s} {'precision':>9s} " + " ".join(f"{c:>10s}" for c in CLASSES) + "  para.unknown-verb"
    print(f"{len(pairs)} labelled pairs; boring rate per class (recall for the first three)\n{head}")
    for name, r in results["judges"].items():
        rates = " ".join(f"{r['boring_rate'].get(c, float('nan')):10.2f}" for c in CLASSES)
        print(f"{name:34s} {r['precision']:9.3f} {rates}  {r['paraphrase_outside_lexicon']:.2f} ({len(outside)})")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
