"""Models in: a model's transposed convolutions as a suite (``deconvbench import``).

- ``model``: what an importer finds (:class:`ImportedModel`, :class:`ImportedLayer`);
- ``padding``: a source's padding as torch's (symmetric ``padding`` plus ``output_padding``);
- ``read``: which importer reads a source;
- ``torch_module``: a torch ``nn.Module`` (or factory), traced on meta tensors;
- ``onnx_file``: ConvTranspose nodes of an ONNX file, with its shape inference;
- ``keras_file``: Conv*DTranspose layers of a Keras 3 ``.keras`` file, from its config;
- ``onednn_log``: deconvolution executions in a oneDNN verbose log or a benchdnn batch file;
- ``suite_text``: an imported model as a suite file, with ``count`` and ``layers``.
"""
