"""`restore-demo`: the toolkit end to end, on the top floor because `--train` trains and exports.

The default path (restore sample photos with the shipped model, draw a contact sheet) is
`runtime.demo` and needs no PyTorch; `restore_demo.cli` adds the training and export stages of
`restore-demo --train` and imports nothing of them unless --train is given.
"""
