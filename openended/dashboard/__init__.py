"""The live curriculum dashboard and static figures, read from run directories only.

``openended dashboard RUNS`` serves a read-only web app (Starlette + uvicorn, Plotly.js
from the ``plotly`` package, no CDN) over a run directory or a folder of them; ``openended
plot RUN...`` writes the same views as PNG/SVG (matplotlib). Both need the ``dashboard``
extra; nothing here imports Ray, and nothing writes to a run directory.

Why from files: a run's folder (`openended.runtime.rundir`) holds everything -- the event
log, metrics rows, evaluations, teacher views (`openended.runtime.views_log`) -- so the
same code serves a live run, a finished or resumed one, and one a cluster job wrote to
shared storage. Files are followed incrementally (read offsets, chunked aggregates), so a
log of a million outcomes paints in about a second with bounded memory.

Modules:
    tail       -- follow an append-only JSONL file (offsets; rewrites and torn tails).
    chunks     -- bounded, mergeable time chunks: task-sampling density, outcome series.
    series     -- metrics rows (decimated, with rates), evaluations, teacher views.
    monitor    -- one run: all of the above, refreshed when its files change.
    runs       -- the runs root: listing, summaries, safe run-id resolution.
    app        -- the Starlette app (JSON API, server-sent events, static files, token).
    server     -- start it (foreground, or in a thread beside ``openended run``).
    plots      -- ``openended plot``: the same views as static figures.
    synthetic  -- run directories in the real formats, for tests, benchmarks and docs.

See docs/dashboard.md.
"""
