"""Media: PyAV probing, decoding to frames and encoding to H.264 MP4. Knows nothing of tasks."""
