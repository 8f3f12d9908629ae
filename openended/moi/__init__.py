"""Foundation-model judges ("models of interestingness"); pure Python, no Ray."""
from openended.moi.base import Judge, JudgeContext, Judgement, candidate_text

__all__ = ["Judge", "JudgeContext", "Judgement", "candidate_text"]
