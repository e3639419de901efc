"""Insert a record with a file attached (the design document's example_with_files.py).

Usage: `uv run python examples/with_files.py [BASE_URL]` (see README, "More").
"""

from _common import base_url

from chat_ingest.client import ChatIngestClient


def main() -> None:
    with ChatIngestClient(base_url()) as client:
        result = client.insert(
            app_id="your-app-id",
            user_id="your-user-id",
            query="请分析这个文档的内容",
            answer=(
                "根据文档内容分析，主要包含以下几个要点："
                "1. 项目背景介绍 2. 技术方案说明 3. 实施计划安排"
            ),
            files=[
                {
                    "type": "document",
                    "transfer_method": "local_file",
                    "url": "/uploads/document.pdf",
                    "upload_file_id": "file-123456",
                    "belongs_to": "user",
                }
            ],
            inputs={"document_type": "pdf", "analysis_type": "summary"},
            metadata={"file_count": 1, "processing_time": 3.5},
        )
        print(f"插入结果: {result.model_dump_json(indent=2)}")
        [message] = client.list_messages(result.conversation_id).data
        for file in message.files:
            print(f"文件: {file.type} {file.url} (upload_file_id={file.upload_file_id})")


if __name__ == "__main__":
    main()
