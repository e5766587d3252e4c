FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY contract ./contract
COPY producers ./producers
COPY worker ./worker
COPY tasks ./tasks
COPY operators ./operators
COPY ops ./ops
RUN pip install --no-cache-dir ".[worker]"
RUN useradd --create-home tierline
USER tierline
