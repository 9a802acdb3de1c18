"""Container images: a small container spec becomes a Singularity/Apptainer definition file
(``spec``, ``render``), checked before anything is built (``lint``, and spython's parser);
jobs build images and run inside them through the job side (``service.containers``).

Pure: builds and parses text, runs nothing (spython's parser reads a temporary file).

May import: ``domain``, ``errors``, ``util``, ``batch`` (its template folder).
"""
