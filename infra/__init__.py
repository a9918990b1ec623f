"""The Pulumi program: AWS layer and in-cluster platform services, configured by typed stack config."""
