"""Running the analysis: work units of (file, time segment) (`segments`), executors that run them
inline, on local processes, batched or on Ray (`executors`), and the pipeline (`pipeline`) that
plans a run (`planning`), writes the store as units finish (`writer`) and then the report.

Imports `report`, `analysis`, `case`, `models`, `video` and the base modules.
"""
