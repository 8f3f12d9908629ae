"""The Gaussian-mixture teachers: ALP-GMM and Covar-GMM, and the machinery they share.

Where things live (read a teacher file top to bottom, then the parts it names):

    alp_gmm.py    -- ALP-GMM (teacher ``alp_gmm``): paper, anchor code, presets, update rule.
    covar_gmm.py  -- Covar-GMM (teacher ``covar_gmm``): the same for the time-return covariance.
    base.py       -- `GMMTeacher`, the shared teacher: reference and fast sampling, fit
                     submission and swap-in, state, stats; `GMMTeacherConfig`; `FitWindows`.
    alp.py        -- absolute learning progress: `ReferenceALP` (teachDeepRL's kd-trees),
                     `WindowALP` (the fast bounded window).
    mixture.py    -- `Mixture`: a fitted mixture with Cholesky factors, batched sampling.
    sampling.py   -- turning a live mixture into tasks (reference pick, vectorised draw, prefetch).
    fit.py        -- fitting a window: `fit_reference` (sklearn sweep), `fit_fast` (batched EM).
    em_kernels.py -- the fast EM's loops, compiled with numba (cached on disk; `warm_up`).

Importing this package imports nothing heavy: the registry loads the teacher modules on
first use, and numba only compiles when a fast teacher is built.
"""
