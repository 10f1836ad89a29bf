"""The experiments pages served by ``job-orchestration scheduler`` beside Luigi's visualiser.

They read the workspace (run records, state folders), never luigid's memory, so they are
right for experiments run with the local scheduler too and after a luigid restart. GET only;
every name and path taken from a URL is confined to the workspace (``confine``).
"""
