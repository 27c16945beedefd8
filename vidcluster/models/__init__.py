"""Face models: detectors, encoders and the runtime they share."""
