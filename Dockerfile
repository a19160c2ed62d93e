# The app image for docker-compose: the service, its migrations, knowledge base and NLU data.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /srv/infoopt
COPY pyproject.toml README.md ./
COPY bot bot
COPY tickets tickets
COPY knowledge_base knowledge_base
COPY cases cases
COPY infoopt infoopt
COPY nlu_data nlu_data
# Installed in place, so the service finds nlu_data/ and the article files beside its code.
RUN pip install -e . && useradd --system --home-dir /srv/infoopt infoopt \
    && mkdir -p /var/lib/infoopt && chown infoopt /var/lib/infoopt
USER infoopt
EXPOSE 8000
CMD ["infoopt", "serve", "--host", "0.0.0.0", "--port", "8000"]
