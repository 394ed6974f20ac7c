"""Helpers of the line-rate benchmark (``services/transfer/benchmarks/line_rate.py``).

One module per job: the simulator model and cases (:mod:`.cases`), the running simulator
and its session (:mod:`.simulator`), where data lives (:mod:`.space`), running a process
tree and reading its peak RSS (:mod:`.processes`), checking a copy (:mod:`.verify`), the
peers (:mod:`.peers`), the slot for Ferry (:mod:`.ferry_slot`), the measuring loop
(:mod:`.harness`), and the table, JSON and chart (:mod:`.report`, :mod:`.chart`).
"""
