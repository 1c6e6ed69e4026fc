"""`curate annotate`: people rank, edit and flag the candidate responses `synth candidates` pooled, on a local page.

- `candidates`: read and validate a candidates file (`id`, `prompt`, `responses: [{id, text, sources}]`)
- `store`: the annotation database (SQLite in WAL mode, in the output directory): every action saved at once
- `rank`: combining several annotators' rankings (Borda count) and their agreement (Kendall's tau, top choice)
- `export`: demonstrations, preference pairs, ranked rows, the ledger and a manifest
- `server`: the page and its JSON API (Starlette on uvicorn; imported only when serving)
"""
