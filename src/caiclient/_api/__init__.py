"""The namespaces of a client: ``client.account``, ``client.chats``, …"""
