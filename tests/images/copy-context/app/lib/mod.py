library
