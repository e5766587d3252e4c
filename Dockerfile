FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY worker ./worker
COPY tasks ./tasks
COPY producers ./producers
COPY ops ./ops
RUN pip install --no-cache-dir .
RUN useradd --create-home tierline
USER tierline
