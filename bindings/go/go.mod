module fsc

go 1.19
