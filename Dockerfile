# The app image (docker-compose, deploy/kubernetes): the service, its migrations, knowledge base, NLU data.
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
# A fixed uid/gid (10001), so Kubernetes can check runAsNonRoot and the manifests can name it.
RUN pip install -e . && groupadd --system --gid 10001 infoopt \
    && useradd --system --uid 10001 --gid infoopt --home-dir /srv/infoopt infoopt \
    && mkdir -p /var/lib/infoopt && chown infoopt /var/lib/infoopt
USER infoopt
EXPOSE 8000
CMD ["infoopt", "serve", "--host", "0.0.0.0", "--port", "8000"]
