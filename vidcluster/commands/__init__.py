"""What the command line offers after or beside a run: regrouping and corrections (`workflow`),
searching by a probe photo (`search`) and calibrating thresholds (`calibrate`). Each returns values;
`cli` prints them.

Imports `run` and everything below it.
"""
