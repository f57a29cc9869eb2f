"""EarthSelf-Service: the openEO API on Dask, with batch jobs, metering, costs, budgets and deploy manifests.

Layers, from the bottom: ``load`` (load_collection over the Catalog contract, lazy via odc-stac),
``processes`` (the process registry: openeo-processes-dask plus our own), ``execute`` (parse, validate and
evaluate a process graph), ``outputs`` (GTiff/netCDF/JSON writers), ``metering`` and ``pricing`` (usage and
costs), ``jobs`` (records in the catalog), ``runner`` (batch jobs on Dask), ``auth``, ``service`` (the facade
the API router and the CLI use), ``deploy`` (Kubernetes and Argo manifests).
"""
