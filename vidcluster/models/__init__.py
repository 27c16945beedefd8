"""Face models that run on ONNX Runtime, and the graph rewrites that make their files loadable."""
