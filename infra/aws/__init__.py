"""The AWS half of the program: network, EKS cluster, node pools and the IAM they need."""
