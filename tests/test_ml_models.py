"""Model factory and device choice: names, listed options, offline ImageNet weights."""

from __future__ import annotations

import pytest
import segmentation_models_pytorch as smp
import torch

from workbench.errors import WorkbenchError
from workbench.ml import device as device_mod
from workbench.ml.device import describe_device, resolve_device
from workbench.ml.models import (ARCHITECTURES, CPU_DEFAULT_ENCODER, GPU_DEFAULT_ENCODER, ModelConfig,
                                 build_model, default_encoder, encoder_names)


def test_architectures_are_exactly_what_smp_offers():
    assert set(ARCHITECTURES.values()) == set(smp.MODEL_ARCHITECTURES_MAPPING)
    assert {"unet", "unetplusplus", "fpn", "deeplabv3plus", "segformer"} <= set(ARCHITECTURES)


@pytest.mark.parametrize("arch", ["unet", "fpn", "deeplabv3plus", "unet++"])
def test_build_model_gives_logits_per_class(arch):
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch, "resnet18"), 5).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 64, 96))
    assert out.shape == (1, 5, 64, 96)


def test_unknown_architecture_lists_the_options():
    with pytest.raises(WorkbenchError) as err:
        build_model(ModelConfig("unnet", "resnet18"), 3)
    msg = str(err.value)
    assert "unknown architecture 'unnet'" in msg
    for name in ("unet", "fpn", "deeplabv3plus", "segformer"):
        assert name in msg


def test_unknown_encoder_lists_options_and_suggests():
    with pytest.raises(WorkbenchError) as err:
        build_model(ModelConfig("unet", "resnet19"), 3)
    msg = str(err.value)
    assert "unknown encoder 'resnet19'" in msg
    assert "Did you mean" in msg and "resnet18" in msg
    assert "mobilenet_v2" in msg and "efficientnet-b0" in msg  # the full list follows


def test_unknown_timm_encoder_is_refused():
    with pytest.raises(WorkbenchError, match="unknown timm encoder 'tu-notamodel'"):
        build_model(ModelConfig("unet", "tu-notamodel"), 3)


def test_invalid_combination_is_a_workbench_error():
    # DPT only takes ViT-style timm encoders; smp's message is passed on, not a traceback.
    with pytest.raises(WorkbenchError, match="cannot build dpt with encoder resnet18"):
        build_model(ModelConfig("dpt", "resnet18"), 3)


def test_offline_imagenet_weights_give_the_clear_message(monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("[Errno -2] Name or service not known")

    monkeypatch.setattr(smp.encoders, "hf_hub_download", offline)
    with pytest.raises(WorkbenchError) as err:
        build_model(ModelConfig("unet", "resnet18", encoder_weights="imagenet"), 3)
    assert str(err.value).startswith("could not download ImageNet weights for resnet18 (no network?): "
                                     "train with --encoder-weights none to start from random initialisation")
    assert "--encoder-weights PATH.safetensors" in str(err.value)  # the offline way to pretrained weights


def test_weights_none_spelled_as_text_builds_offline(monkeypatch):
    monkeypatch.setattr(smp.encoders, "hf_hub_download",
                        lambda *a, **k: pytest.fail("no download expected"))
    build_model(ModelConfig("unet", "resnet18", encoder_weights="none"), 2)


def test_default_encoder_per_device():
    assert default_encoder("cpu") == CPU_DEFAULT_ENCODER
    assert default_encoder(torch.device("cuda", 0)) == GPU_DEFAULT_ENCODER == "resnet34"
    assert CPU_DEFAULT_ENCODER in encoder_names()


def test_resolve_device_cpu_and_auto_without_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device_mod, "_mps_available", lambda: False)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(None) == torch.device("cpu")


@pytest.mark.parametrize("name, what", [("cuda", "CUDA"), ("cuda:1", "CUDA"), ("mps", "Apple MPS")])
def test_absent_device_names_what_is_available(monkeypatch, name, what):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device_mod, "_mps_available", lambda: False)
    with pytest.raises(WorkbenchError) as err:
        resolve_device(name)
    assert what in str(err.value) and "available: cpu" in str(err.value)


def test_auto_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device_mod, "_mps_available", lambda: True)
    assert resolve_device("auto").type == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto").type == "cuda"


def test_nonsense_device_is_refused():
    with pytest.raises(WorkbenchError, match="unknown device 'gpu0'"):
        resolve_device("gpu0")


def test_describe_cpu():
    assert describe_device("cpu") == f"CPU ({torch.get_num_threads()} thread" + \
        ("s)" if torch.get_num_threads() != 1 else ")")
