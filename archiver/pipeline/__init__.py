"""The archiving job: listing feeds downloads, downloads feed the manifest."""
