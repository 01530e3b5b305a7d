"""`make bench`: seed a million leads into `leadflow_bench`, then time the lead API and the ingest API over HTTP.

Run with `make bench` (`BENCH_LEADS=100000 make bench` for a quick run). Results go to `bench/results.json` and
`bench/RESULTS.md`; README.md § Benchmarks explains the set-up.
"""
