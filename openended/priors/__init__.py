"""Pretrained-policy priors: networks whose released weights a learner starts from or is pulled towards.

Pure torch (no Ray): `openended.priors.vpt` is OpenAI's VPT Minecraft policy, with its
``.model`` / ``.weights`` loader; `openended.priors.vpt_actions` maps VPT's joint action
choices to the `minecraft` env's buttons and camera bins and back.
"""
