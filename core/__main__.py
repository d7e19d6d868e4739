from .cli import entry

if __name__ == "__main__":  # python -m bioscale (importing the module runs nothing)
    entry()
