"""What sandbox/moto_server.py applies to moto before serving it, one module per purpose (each says which).

moto_server.py applies the patches in its own order and serves; each module only defines them. The
sandbox runs moto_server.py as a script, so its directory is on the path and this package imports as
`server_patches`. Its name must not start with "moto": moto serializes an exception whose class's module
name does as an error of the moto service that module names (moto.core.errors.get_exception_service_model),
so the AccessDenied classes defined here answered 500 UnknownServiceError under a moto_* name.
"""
