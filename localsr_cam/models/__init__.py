"""Torch ``nn.Module``\\ s only: the U-Nets and the selfie segmenter port.

They know no runtime, manifest, registry or command line; may import errors only.
"""
