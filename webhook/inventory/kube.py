"""The one way netguard reaches the Kubernetes API: client configuration (a kubeconfig, the
default kubeconfig, or the pod's service account), raw GETs, paged lists, and the few writes of
the self-managed certificates (ObjectApi: its Secret and its two webhook configurations).

Requests go through the official client's ApiClient -- its authentication (tokens refreshed),
TLS and proxy settings -- and answers are read as raw JSON, never as model objects: importing
the generated CoreV1Api / NetworkingV1Api alone loads ~250 model classes (~24 MiB per worker),
and models of 30,000 policies cost hundreds of MiB (bench/inventory_memory.py).
Paging: https://kubernetes.io/docs/reference/using-api/api-concepts/#retrieving-large-results-sets-in-chunks
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from webhook.wire import jsoncodec

if TYPE_CHECKING:  # the client is imported when first used: `netguard check` without --cluster
    from kubernetes.client.api_client import ApiClient  # never loads it
    from kubernetes.client.configuration import Configuration

PAGE_SIZE = 500
# One live read of a namespace (before a denial, or an allow resting on cached state) is this many
# GETs, each bounded by (connect, read) seconds: the budget the webhook's timeoutSeconds is
# derived from (webhook/cli/deploy.py).
LIVE_READ_GETS = 3
LIVE_READ_TIMEOUT = (1.0, 1.5)
# (connect, read) seconds for one page of `netguard audit` / `check --cluster`.
REQUEST_TIMEOUT = (10.0, 60.0)


def _load_problems() -> tuple[type[BaseException], ...]:
    import yaml
    from kubernetes.config.config_exception import ConfigException
    return (ConfigException, OSError, yaml.YAMLError, ValueError, TypeError, KeyError)

NAMESPACES_PATH = "/api/v1/namespaces"
# Cluster-wide collections, and the namespaced ones as format strings.
COLLECTIONS = {
    "namespaces": NAMESPACES_PATH,
    "networkpolicies": "/apis/networking.k8s.io/v1/networkpolicies",
    "services": "/api/v1/services",
}
NAMESPACED = {
    "networkpolicies": "/apis/networking.k8s.io/v1/namespaces/{}/networkpolicies",
    "services": "/api/v1/namespaces/{}/services",
}


class ClusterError(RuntimeError):
    """The cluster cannot be reached or read; the message says which and why."""


def kubeconfig_configuration(path: str | None = None, context: str | None = None) -> Configuration:
    """The client configuration of a kubeconfig file (the client's default when `path` is None).
    Raises the client's own errors (ConfigException, OSError, ...)."""
    from kubernetes import config
    from kubernetes.client.configuration import Configuration

    configuration = Configuration()
    # persist_config=False: never write refreshed tokens back into the user's kubeconfig.
    config.load_kube_config(config_file=path, context=context,
                            client_configuration=configuration, persist_config=False)
    return configuration


def in_cluster_configuration() -> Configuration:
    """The pod's service account. Raises ConfigException outside a pod."""
    from kubernetes import config
    from kubernetes.client.configuration import Configuration

    configuration = Configuration()
    config.load_incluster_config(client_configuration=configuration)
    return configuration


def any_configuration(kubeconfig: str | None) -> Configuration:
    """`kubeconfig`, else the default kubeconfig ($KUBECONFIG, ~/.kube/config), else the
    in-cluster service account (for an audit run as a CronJob). Raises ClusterError."""
    problems = _load_problems()
    if kubeconfig:
        try:
            return kubeconfig_configuration(kubeconfig)
        except problems as exc:
            raise ClusterError(f"cannot load kubeconfig {kubeconfig}: {exc}") from None
    # $KUBECONFIG is read now, not when the client was imported (it reads it once, at import).
    default = os.path.expanduser(os.environ.get("KUBECONFIG") or "~/.kube/config")
    try:
        return kubeconfig_configuration(default)
    except problems as kube_exc:
        try:
            return in_cluster_configuration()
        except problems as cluster_exc:
            raise ClusterError(f"no usable kubeconfig ({kube_exc}) and not running in a cluster "
                               f"({cluster_exc}); pass --kubeconfig") from None


def api_client(configuration: Configuration) -> ApiClient:
    from kubernetes.client.api_client import ApiClient

    # TCP keepalive with client-go's timings: a watch through a proxy that silently drops idle
    # connections is noticed in minutes, not at the end of timeoutSeconds.
    configuration.keep_alive = True
    # One retry (urllib3's default is three): enough for a pooled connection the apiserver
    # closed while idle, and a live read against an unreachable API gives up within the
    # admission timeout. The watch loop does its own retrying.
    configuration.retries = 1
    return ApiClient(configuration)


class RawApi:
    """GETs through a kubernetes ApiClient, answered as raw urllib3 responses."""

    def __init__(self, client: ApiClient) -> None:
        self.api_client = client

    def send(self, method: str, path: str, body: Any, content_type: str = "application/json",
             timeout: tuple[float, float] | None = None) -> Any:
        """A request with a JSON body; the urllib3 response, body unread; ApiException for a
        non-2xx answer."""
        from kubernetes.client.exceptions import ApiException

        headers = {"Accept": "application/json", "Content-Type": content_type}
        if not hasattr(self.api_client, "param_serialize"):  # kubernetes <= 35, as in get()
            return self.api_client.call_api(
                path, method, header_params=headers, body=body, auth_settings=["BearerToken"],
                _preload_content=False, _return_http_data_only=True, _request_timeout=timeout)
        method, url, headers, body, post = self.api_client.param_serialize(
            method, path, header_params=headers, body=body, auth_settings=["BearerToken"])
        response = self.api_client.call_api(method, url, header_params=headers, body=body,
                                            post_params=post, _request_timeout=timeout)
        if not 200 <= response.status <= 299:
            response.read()
            response.response.release_conn()
            raise ApiException.from_response(http_resp=response, body=response.data.decode("utf-8", "replace")
                                             if response.data else None, data=None)
        return response.response

    def get(self, path: str, query: Mapping[str, Any] | None = None,
            timeout: tuple[float, float] | None = None) -> Any:
        """The urllib3 response, body unread; ApiException for a non-2xx answer."""
        from kubernetes.client.exceptions import ApiException

        params = [(k, v) for k, v in (query or {}).items() if v is not None]
        if not hasattr(self.api_client, "param_serialize"):
            # kubernetes <= 35, generated by python-legacy: call_api returns the raw response
            # with _preload_content=False and raises ApiException for non-2xx itself.
            return self.api_client.call_api(
                path, "GET", query_params=params, header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"], _preload_content=False,
                _return_http_data_only=True, _request_timeout=timeout)
        method, url, headers, body, post = self.api_client.param_serialize(
            "GET", path, query_params=params,
            header_params={"Accept": "application/json"}, auth_settings=["BearerToken"])
        response = self.api_client.call_api(method, url, header_params=headers, body=body,
                                            post_params=post, _request_timeout=timeout)
        if not 200 <= response.status <= 299:
            response.read()
            response.response.release_conn()
            raise ApiException.from_response(http_resp=response, body=None, data=None)
        return response.response

    def collection(self, path: str) -> Any:
        """GET of one collection as (query, timeout) -> response, for a Reflector."""
        return lambda query, timeout: self.get(path, query, timeout)

    def get_json(self, path: str, query: Mapping[str, Any] | None = None,
                 timeout: tuple[float, float] | None = None) -> Any:
        return read_json(self.get(path, query, timeout))

    def list_all(self, path: str, timeout: tuple[float, float] | None = None,
                 page_size: int = PAGE_SIZE) -> tuple[list[dict[str, Any]], str]:
        """Every item of a collection, page by page (limit/continue), and the resourceVersion of
        the first page. Without resourceVersion a LIST is a consistent read."""
        items: list[dict[str, Any]] = []
        token, version = "", ""
        while True:
            page = self.get_json(path, {"limit": page_size, "continue": token or None}, timeout)
            items.extend(page.get("items") or ())
            metadata = page.get("metadata") or {}
            version = version or str(metadata.get("resourceVersion") or "")
            token = metadata.get("continue") or ""
            if not token:
                return items, version


def close_response(response: Any) -> None:
    """Close a response in the thread that reads it (and give its connection back)."""
    for method in ("close", "release_conn"):
        try:
            getattr(response, method)()
        except Exception:  # already closed or released: nothing left to do
            pass


def read_json(response: Any) -> Any:
    """The decoded body of a (non-streaming) response; its connection goes back to the pool."""
    try:
        body = response.read()
    except BaseException:
        close_response(response)
        raise
    response.release_conn()  # keep-alive: the next list page or live read reuses the connection
    return jsoncodec.loads(body)  # orjson: list pages of a large cluster are most of start-up


@dataclass(frozen=True)
class ClusterObjects:
    """Raw objects as the API serves them, each given back its `kind` and `apiVersion`."""

    namespaces: list[dict[str, Any]]
    policies: list[dict[str, Any]]
    services: list[dict[str, Any]]
    # Cluster-wide and CNI policies (webhook/core/clusterpolicy.py), of the kinds the cluster serves.
    cluster_policies: list[dict[str, Any]] = field(default_factory=list)


_KINDS = {"namespaces": ("Namespace", "v1"), "networkpolicies": ("NetworkPolicy", "networking.k8s.io/v1"),
          "services": ("Service", "v1")}


def list_cluster(kubeconfig: str | None = None) -> ClusterObjects:
    """All Namespaces, NetworkPolicies and Services of the cluster, and the cluster-wide and CNI
    policies of the kinds it serves. Raises ClusterError."""
    found = _list_each(kubeconfig, [(what, path, *_KINDS[what]) for what, path in COLLECTIONS.items()],
                       cluster_policies=True)
    return ClusterObjects(found["namespaces"], found["networkpolicies"], found["services"],
                          found["cluster_policies"])


# What `netguard fix --cluster` reads to resolve a Service's named target ports: the pod templates
# of the namespaces holding LoadBalancers (webhook/core/podports.py).
WORKLOADS = {
    "deployments": ("/apis/apps/v1/namespaces/{}/deployments", "Deployment", "apps/v1"),
    "statefulsets": ("/apis/apps/v1/namespaces/{}/statefulsets", "StatefulSet", "apps/v1"),
    "daemonsets": ("/apis/apps/v1/namespaces/{}/daemonsets", "DaemonSet", "apps/v1"),
    "pods": ("/api/v1/namespaces/{}/pods", "Pod", "v1"),
}


def list_workloads(namespaces: list[str], kubeconfig: str | None = None) -> list[dict[str, Any]]:
    """The Deployments, StatefulSets, DaemonSets and Pods of `namespaces`. Raises ClusterError."""
    jobs = [(f"{what} in {ns}", path.format(ns), kind, api_version)
            for ns in namespaces for what, (path, kind, api_version) in WORKLOADS.items()]
    return [item for items in _list_each(kubeconfig, jobs).values() for item in items]


def _list_each(kubeconfig: str | None, jobs: list[tuple[str, str, str, str]],
               cluster_policies: bool = False) -> dict[str, list[dict[str, Any]]]:
    """Every item of each (what, path, kind, apiVersion) collection, by `what`, through one client;
    with `cluster_policies`, also those of the served cluster-wide and CNI policy kinds."""
    import urllib3.exceptions
    from kubernetes.client.exceptions import ApiException

    client = api_client(any_configuration(kubeconfig))
    host = client.configuration.host
    api = RawApi(client)
    what = jobs[0][0] if jobs else ""
    try:
        found: dict[str, list[dict[str, Any]]] = {"cluster_policies": []}
        if cluster_policies:
            what = "the cluster-wide and CNI policy APIs (discovery)"
            jobs = jobs + [(path, path, kind, version) for kind, (path, version) in discover_cluster_policies(api).items()]
        for what, path, kind, api_version in jobs:
            items, _ = api.list_all(path, REQUEST_TIMEOUT)
            for item in items:  # list items come without kind/apiVersion
                item.setdefault("kind", kind)
                item.setdefault("apiVersion", api_version)
            found.setdefault(what, items)
            if what == path:  # a cluster-wide or CNI policy kind
                found["cluster_policies"].extend(items)
        return found
    except ApiException as exc:
        raise ClusterError(f"the API server at {host} refused to list {what}: "
                           f"HTTP {exc.status} {exc.reason}".rstrip()) from None
    except urllib3.exceptions.MaxRetryError as exc:
        raise ClusterError(f"cannot reach the API server at {host}: {exc.reason}") from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise ClusterError(f"cannot reach the API server at {host}: {exc}") from None
    except ValueError as exc:  # the body is not JSON: not an API server
        raise ClusterError(f"the answer of {host} to a list of {what} is not JSON: {exc}") from None
    finally:
        client.close()


def discover_cluster_policies(api: RawApi, timeout: tuple[float, float] = REQUEST_TIMEOUT
                              ) -> dict[str, tuple[str, str]]:
    """kind -> (path, apiVersion) of each cluster-wide or CNI policy kind served (GET /apis/GROUP,
    then /apis/GROUP/VERSION: https://kubernetes.io/docs/reference/using-api/api-concepts/#discovery-api).
    A group or version not served (404; 403/503 of an aggregated API) is no error."""
    from kubernetes.client.exceptions import ApiException

    from webhook.core import clusterpolicy

    def get(path: str) -> Any:
        try:
            return api.get_json(path, timeout=timeout)
        except ApiException as exc:
            if exc.status in (403, 404, 503):
                return None
            raise

    return clusterpolicy.discover(get)


# --------------------------------------------------------------------------- certificate objects

SECRET_PATH = "/api/v1/namespaces/{}/secrets/{}"
WEBHOOK_CONFIGURATIONS = {
    "ValidatingWebhookConfiguration": "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/{}",
    "MutatingWebhookConfiguration": "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{}",
}
# (connect, read) seconds for one read or write of the certificate objects.
OBJECT_TIMEOUT = (5.0, 10.0)


def object_api(kubeconfig: str | None = None) -> ObjectApi:
    """An ObjectApi through `kubeconfig`, else the pod's service account. Raises ClusterError."""
    problems = _load_problems()
    try:
        configuration = kubeconfig_configuration(kubeconfig) if kubeconfig else in_cluster_configuration()
    except problems as exc:
        where = f"kubeconfig {kubeconfig}" if kubeconfig else "the pod's service account"
        raise ClusterError(f"cannot load {where}: {exc}") from None
    return ObjectApi(api_client(configuration))


class Conflict(ClusterError):
    """409: the object changed since it was read (or already exists): read it again."""


class ObjectApi:
    """GET, create and replace of one Secret; GET and strategic-merge PATCH of a webhook
    configuration. Answers are raw JSON dicts; a missing object is None. Raises Conflict on
    409 and ClusterError for anything else that is not 2xx (the message says what and why).
    Writes carry metadata.resourceVersion, so a write over a newer version is refused (409):
    https://kubernetes.io/docs/reference/using-api/api-concepts/#conflicts
    """

    def __init__(self, client: ApiClient) -> None:
        self.raw = RawApi(client)
        self.host = client.configuration.host

    def close(self) -> None:
        """Give back the connections (before a fork: a child must not share the parent's)."""
        self.raw.api_client.close()

    def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._call("get", f"Secret {namespace}/{name}", "GET", SECRET_PATH.format(namespace, name))

    def create_secret(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        return self._call("create", f"Secret {namespace}/{name}", "POST",
                          f"/api/v1/namespaces/{namespace}/secrets", body, missing_ok=False)

    def replace_secret(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("update", f"Secret {namespace}/{name}", "PUT", SECRET_PATH.format(namespace, name),
                          body, missing_ok=False)

    def get_webhook_configuration(self, kind: str, name: str) -> dict[str, Any] | None:
        return self._call("get", f"{kind} {name}", "GET", WEBHOOK_CONFIGURATIONS[kind].format(name))

    def patch_webhook_configuration(self, kind: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        # Strategic merge: `webhooks` merges by name, so only the entries named are touched.
        return self._call("patch", f"{kind} {name}", "PATCH", WEBHOOK_CONFIGURATIONS[kind].format(name), patch,
                          content_type="application/strategic-merge-patch+json", missing_ok=False)

    def _call(self, verb: str, what: str, method: str, path: str, body: Any = None,
              content_type: str = "application/json", missing_ok: bool = True) -> Any:
        import urllib3.exceptions
        from kubernetes.client.exceptions import ApiException

        try:
            if method == "GET":
                return self.raw.get_json(path, timeout=OBJECT_TIMEOUT)
            return read_json(self.raw.send(method, path, body, content_type, OBJECT_TIMEOUT))
        except ApiException as exc:
            if exc.status == 404 and missing_ok:
                return None
            message = _status_message(exc)
            if exc.status == 409:
                raise Conflict(f"cannot {verb} {what}: {message}") from None
            raise ClusterError(f"the API server at {self.host} refused to {verb} {what}: "
                               f"HTTP {exc.status} {message}".rstrip()) from None
        except urllib3.exceptions.MaxRetryError as exc:
            raise ClusterError(f"cannot reach the API server at {self.host} to {verb} {what}: {exc.reason}") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ClusterError(f"cannot reach the API server at {self.host} to {verb} {what}: {exc}") from None
        except ValueError as exc:
            raise ClusterError(f"the answer of {self.host} to {verb} {what} is not JSON: {exc}") from None


def _status_message(exc: Any) -> str:
    """The Status message of an ApiException, else its reason."""
    try:
        return str(jsoncodec.loads(exc.body)["message"])
    except (TypeError, ValueError, KeyError):
        return str(exc.reason or "")
