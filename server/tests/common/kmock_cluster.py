"""A Kubernetes API on 127.0.0.1 for the Kubernetes executor's tests: kmock's in-memory
emulator (Jobs, Pods, Secrets: create, get, list, watch, merge-patch of objects and their
status, delete) plus the few things it does not serve, added through its own reaction API:

- GET  /api/v1/namespaces/NAME           the namespaces given with --namespace exist, no other
- POST .../selfsubjectaccessreviews      allowed, unless --deny VERB/RESOURCE (not stored:
                                         the emulator would refuse a second nameless object)
- GET  .../pods/NAME/log                 the text the test appended (404 for no pod)
- POST /_kmock/logs/NAMESPACE/NAME       appends the request body to that pod's log
- GET  /_kmock/requests                  every Kubernetes request so far (method, path,
                                         query, body), for asserting e.g. a delete's options

Nothing is scheduled or run: the test plays the Job controller and the kubelet. Prints the
port it listens on, then serves until killed.
"""

import argparse
import asyncio
import datetime
import re
import sys
import uuid

import kmock
from kmock._internal import apps


class Cluster(kmock.KubernetesEmulator):
    """The emulator, plus what a real API server stamps on every object it stores: a
    `resourceVersion` that changes on every write (a watch client needs it: kube-rs's watcher
    starts over on an event without one), and a `uid` and `creationTimestamp` on creation."""

    version: int = 0

    async def _handle(self, request):
        # A review is a question, not an object: answered, never stored.
        if request.resource is not None and request.resource.plural == 'selfsubjectaccessreviews':
            return await apps.RawHandler._handle(self, request)
        if request.resource is not None and isinstance(request.data, dict):
            if request.action == kmock.action.CREATE:
                self.version += 1
                meta = request.data.setdefault('metadata', {})
                meta['resourceVersion'] = str(self.version)
                meta.setdefault('uid', str(uuid.uuid4()))
                meta.setdefault('creationTimestamp',
                                datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%dT%H:%M:%SZ'))
            elif request.action == kmock.action.UPDATE:
                self.version += 1
                request.data.setdefault('metadata', {})['resourceVersion'] = str(self.version)
        return await super()._handle(request)

    async def _render_error(self, exc):
        # The reasons a real API server gives (kmock words them for people).
        if isinstance(exc, kmock.KubernetesNotFoundError):
            exc = kmock.KubernetesError(status=404, reason='NotFound', message=exc.message)
        elif isinstance(exc, kmock.KubernetesError) and exc.status == 409:
            exc = kmock.KubernetesError(status=409, reason='AlreadyExists', message=exc.message)
        return await super()._render_error(exc)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('--namespace', action='append', default=[])
    parser.add_argument('--deny', action='append', default=[], help='VERB/RESOURCE')
    args = parser.parse_args()
    asyncio.run(serve(set(args.namespace), set(args.deny)))


async def serve(namespaces: set[str], denied: set[str]) -> None:
    cluster = Cluster()
    info = kmock.ResourceInfo
    cluster.resources['batch/v1/jobs'] = info(kind='Job', namespaced=True, subresources={'status'},
                                              verbs={'create', 'get', 'list', 'watch', 'patch', 'delete'})
    cluster.resources['v1/pods'] = info(kind='Pod', namespaced=True, subresources={'status', 'log'},
                                        verbs={'create', 'get', 'list', 'watch', 'patch', 'delete'})
    cluster.resources['v1/secrets'] = info(kind='Secret', namespaced=True,
                                           verbs={'create', 'get', 'list', 'delete'})
    logs: dict[tuple[str, str], bytes] = {}

    def namespace(request: kmock.Request):
        name = request.url.path.rstrip('/').split('/')[-1]
        if name not in namespaces:
            raise kmock.KubernetesError(status=404, reason='NotFound',
                                        message=f'namespaces "{name}" not found')
        return {'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': name},
                'status': {'phase': 'Active'}}

    def review(request: kmock.Request):
        attributes = (request.data or {}).get('spec', {}).get('resourceAttributes', {})
        allowed = f"{attributes.get('verb')}/{attributes.get('resource')}" not in denied
        return {'apiVersion': 'authorization.k8s.io/v1', 'kind': 'SelfSubjectAccessReview',
                'metadata': {}, 'spec': request.data.get('spec', {}),
                'status': {'allowed': allowed, **({} if allowed else {'reason': 'denied by the test'})}}

    def pod_log(request: kmock.Request):
        parts = request.url.path.strip('/').split('/')
        key = (parts[3], parts[5])
        if (kmock.resource('', 'v1', 'pods'), key[0], key[1]) not in cluster.objects:
            raise kmock.KubernetesError(status=404, reason='NotFound',
                                        message=f'pods "{key[1]}" not found')
        return logs.get(key, b'')

    def append_log(request: kmock.Request):
        _, _, namespace_, name = request.url.path.strip('/').split('/')
        logs[(namespace_, name)] = logs.get((namespace_, name), b'') + request.body
        return {}

    def requests(request: kmock.Request):
        return [{'method': str(r.method.value).upper(), 'path': r.url.path, 'query': dict(r.params),
                 'body': r.data}
                for r in cluster._requests if not r.url.path.startswith('/_kmock/')]

    cluster['get', re.compile(r'/api/v1/namespaces/[^/]+/?')] << namespace
    cluster['post', re.compile(r'/apis/authorization\.k8s\.io/v1/selfsubjectaccessreviews')] << review
    cluster['get', re.compile(r'/api/v1/namespaces/[^/]+/pods/[^/]+/log')] << pod_log
    cluster['post', re.compile(r'/_kmock/logs/[^/]+/[^/]+')] << append_log
    cluster['get /_kmock/requests'] << requests

    async with cluster, kmock.Server(cluster) as server:
        print(server.port, flush=True)
        await asyncio.Event().wait()


if __name__ == '__main__':
    sys.exit(main())
