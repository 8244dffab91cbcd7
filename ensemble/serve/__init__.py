"""The ensemble as an OpenAI-compatible server: `python -m ensemble serve --preset NAME` (docs/serve.md).

    cli.py       flags, the key / bind check, loading, uvicorn
    service.py   preset -> targets (the ensemble, and each member alone); request -> Job, validated
    gate.py      one answer on the device at a time, and a bounded first-come line of waiting requests
    answer.py    a Job on a worker thread: engine events -> Deltas, handed to the event loop
    logprobs.py  each step's fused distribution: the chosen token's log-probability and the top alternatives
    schemas.py   pydantic models of OpenAI's request, response and chunk shapes
    shapes.py    Deltas -> chat / completion responses and chunks
    routes.py    the FastAPI app: /v1/models, /v1/chat/completions, /v1/completions; errors in OpenAI's shape

Nothing here is imported by `import ensemble`; `python -m ensemble serve` imports it on use.
"""
