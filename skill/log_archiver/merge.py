"""``python -m log_archiver.merge``: the merge driver as repositories set up by earlier
versions of ``init`` name it; the driver itself is :mod:`log_archiver.index.merge`."""

if __name__ == "__main__":
    import sys

    from log_archiver.index.merge import main

    sys.exit(main())
