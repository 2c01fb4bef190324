"""The model: typed views of the objects read, their kinds, the compact records
the index keeps, CEL-style values, and reading JSON and YAML.

Pure, and the floor: imports nothing else of the project."""
