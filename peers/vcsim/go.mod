module ferry.dev/peers/vcsim

go 1.26.0

require github.com/vmware/govmomi v0.56.0 // indirect
