"""AWS providers: S3 objects (datasets, model artifacts) and SNS alert channels (boto3)."""
