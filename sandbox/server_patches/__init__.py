"""What sandbox/moto_server.py applies to moto before serving it, one module per purpose.

- access: who may do what, as AWS decides it (trust policies, bucket policies across accounts, signatures
  over the raw URI, denials that say why, PutEvents authorized on its bus).
- digests, conditional_writes, copy_sources, answers, event_sequencers: S3 behaving as S3 does where the
  sync depends on it (digests checked, conditional writes and completions, copy sources, answers moto
  builds incompletely, EventBridge sequencers).
- speed: costs of moto's server, not of S3, cut so that benchmarks measure the tools.
- region_redirects, sandbox_endpoints: WSGI wrappers around moto's app (wrong-region answers, and the
  loopback-only /_sandbox/ endpoints).

moto_server.py applies the patches in its own order and serves; each module only defines them. The
sandbox runs moto_server.py as a script, so its directory is on the path and this package imports as
`server_patches`. Its name must not start with "moto": moto serializes an exception whose class's module
name does as an error of the moto service that module names (moto.core.errors.get_exception_service_model),
so the AccessDenied classes defined here answered 500 UnknownServiceError under a moto_* name.
"""
