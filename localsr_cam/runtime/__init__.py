"""Backends that run a model: the Engine interface, the backend choice, and one module
per backend (ONNX Runtime, PyTorch, TensorRT with its plan builder, torchvision's Mask
R-CNN). Optional libraries are imported inside the module that needs them.

May import paths and errors only: a backend is handed a file or a module, it never
looks a model up (that is the zoo's job).
"""
