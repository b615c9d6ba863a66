"""`conveyor demo`: the commerce pipelines end to end against the local simulators.

`app` is the Conveyor app the demo's worker and API processes load;
`catalog_seed` fills a fresh catalog; `run` starts simulators, processes and
jobs and watches them.
"""
