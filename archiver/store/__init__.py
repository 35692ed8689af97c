"""The archive on disk: its folders and files, the manifest, the lock."""
