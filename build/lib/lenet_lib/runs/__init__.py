"""Running experiments: what a run is, which runs each experiment makes, the runner, its Dask
workers and the folders a run writes, reading results back, and the engine's benchmark."""
