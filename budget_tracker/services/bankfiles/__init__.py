"""Reading the files banks export: delimited text, OFX/QFX, QIF, CAMT.053 and MT940.

`source` opens what the user gave and tells the format from the content; one module per
format turns the file into `Record`s; `amounts` and `dates` read values as banks write
them; `statement` interprets the records into the rows to store and counts the rest.
"""
