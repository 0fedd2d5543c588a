module github.com/breign/goAMF3

go 1.24
